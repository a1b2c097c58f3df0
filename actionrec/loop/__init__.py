"""Closing the loop: the labeling queue, people's answers (Label Studio), drift."""
