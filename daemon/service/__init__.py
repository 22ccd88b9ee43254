"""One running daemon: wiring the rooms together, the serve lifecycle, signals, sd_notify,
the admin socket server and its commands, and live status. May import every room but ``cli``.
"""
