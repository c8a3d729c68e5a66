"""The drift corrector (`saxctl drift`): report what drifted and who changed it, correct what is safe, never fight."""
