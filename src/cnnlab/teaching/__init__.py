"""The lectures as teaching material: the notes' errata, exercises that grade themselves
(:mod:`cnnlab.teaching.quiz`) and each lecture claim as a runnable experiment
(:mod:`cnnlab.teaching.experiments`)."""
