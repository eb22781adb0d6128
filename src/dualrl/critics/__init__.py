"""Critics: value networks and the losses / actor weights they define."""
