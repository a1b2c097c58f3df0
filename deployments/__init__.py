"""Deployments: schedules for the flows, and the ``actionrec`` console script's top level."""
