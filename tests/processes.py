"""For tests that send a child process Ctrl-C: the child takes SIGINT even when pytest runs with it ignored."""
import signal


def take_sigint() -> None:
    """A Popen preexec_fn. NOTE: a job started in the background of a non-interactive shell (`pytest &`) has SIGINT
    ignored, its children inherit that, and Python leaves an ignored SIGINT ignored (so does train): reset it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
