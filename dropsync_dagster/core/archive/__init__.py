"""Encrypted archives: generations, the tar | gpg stream, the archive policy and the gpg binary."""
