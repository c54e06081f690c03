"""The one exception type of the merge package that the CLI prints without a traceback."""


class MergeError(Exception):
    """A problem the user can fix: a bad config, a missing model, models that cannot be merged."""

    user_error = True
