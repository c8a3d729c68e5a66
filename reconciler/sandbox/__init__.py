"""Local emulators of the APIs saxctl drives, and the supervisor that starts them."""
