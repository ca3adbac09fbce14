"""Image folders -> sharded TFRecords (+ manifest.json), and the pixel pipeline shared by training and serving."""
