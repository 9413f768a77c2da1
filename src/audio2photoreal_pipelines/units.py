"""The units of upstream's data layout, each stated once: everything else imports them.

A scene is a 2-channel waveform (0: the person, 1: the partner) and that person's motion at a
fixed frame rate, so one motion frame spans a whole number of waveform samples. Audio features
(log-mel, vq-wav2vec) come at a hop of 10 ms; the guide works on one pose per second.
"""

SAMPLE_RATE = 48_000  # Hz, the waveform
FPS = 30  # motion frames per second
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
AUDIO_FEATURE_RATE = 100  # Hz, audio feature frames
KEYFRAME_STRIDE = FPS  # motion frames between guide poses (1 fps)
BODY_DIM = 104  # joint angles per body frame
FACE_DIM = 256  # expression codes per face frame
