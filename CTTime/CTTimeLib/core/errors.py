"""The one exception type for problems a user can fix (bad file, bad table, bad option)."""


class CTTimeError(Exception):
    """A user error: the message names the file or lesion and says what to do.

    ``kind`` groups errors in run summaries (input, geometry, mask, image, standardization, model, manifest; size:
    beyond the run's voxel limit; output: the output folder cannot be written; worker: the process died).
    """

    def __init__(self, message, kind="input"):
        super().__init__(message)
        self.kind = kind


class Cancelled(Exception):
    """The user cancelled a long run (Slicer's progress dialog or Ctrl-C)."""
