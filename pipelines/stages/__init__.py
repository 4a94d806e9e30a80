"""One module per DVC stage: read params, call `augment`, write the stage's declared outs."""
