"""Status codes returned by the word-stream decode kernels (see :mod:`neurodata.formats.word_stream`)."""

DONE = 0  # every word decoded
OUTPUT_FULL = 1  # stopped before a word that could overflow the output buffer
FIRST_ERROR = 2  # this and above: stopped at a corrupt word
UNKNOWN_TYPE = 2
X_BEYOND_WIDTH = 3
Y_BEYOND_HEIGHT = 4
