"""The lab: a local web page to draw a digit, watch the tutorial's network compute it, step and train it.

`python -m tinygrad_edu lab` starts it (tinygrad_edu.cli.lab); lab.server serves the page in lab/static and its
JSON API, lab.session holds the network and does every computation with tinygrad_edu's ops, lab.digits turns a
drawing into an MNIST-style 28×28 image. The core package never imports this one.
"""
