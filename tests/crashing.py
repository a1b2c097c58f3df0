"""A decode function that really crashes its process (SIGSEGV) on files named *crash*: the fault
FFmpeg can cause on hostile input, caused for real without shipping a hostile file."""

import os
import signal

from actionrec.data.clips import decode_clips


def decode_or_crash(uri, spec, clips):
    if "crash" in os.path.basename(uri):
        os.kill(os.getpid(), signal.SIGSEGV)
    return decode_clips(uri, spec, clips)


def decode_or_hang(uri, spec, clips):
    """Hangs for real (a decoder stuck in a loop) on files named *slow*."""
    if "slow" in os.path.basename(uri):
        import time

        time.sleep(600)
    return decode_clips(uri, spec, clips)


def stream_or_fail(uri, spec, every, views):
    """A dense stream that crashes its process (*crash*) or hangs (*slow*) after its first clip."""
    from actionrec.data.clips import stream_clips

    for n, item in enumerate(stream_clips(uri, spec, every, views)):
        if n == 1 and "crash" in os.path.basename(uri):
            os.kill(os.getpid(), signal.SIGSEGV)
        if n == 1 and "slow" in os.path.basename(uri):
            import time

            time.sleep(600)
        yield item
