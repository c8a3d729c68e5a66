"""One provider per API family; each turns its part of the spec into resources and drives its API."""
