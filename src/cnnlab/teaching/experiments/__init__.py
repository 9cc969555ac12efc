"""Each lecture claim as a runnable experiment, one file each."""
