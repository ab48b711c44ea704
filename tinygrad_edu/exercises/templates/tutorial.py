"""The tutorial's backward_prop, one gradient at a time: write each (then: tinygrad-edu exercises check .).

The network, in the tutorial's layout (one column per example, m columns):

    Z1 = W1·X + b1,   A1 = ReLU(Z1),   Z2 = W2·A1 + b2,   A2 = softmax(Z2)

X is n×m, W1 h×n, b1 h×1, W2 k×h, b2 k×1, and one_hot_Y is k×m. As in the tutorial, dZ2 and dZ1 are the
gradients of the loss summed over the m examples; dW and db are those of the mean loss, so they divide by m.
Each function returns a numpy array in the shape of the quantity it is the gradient of.
"""
import numpy as np


def dZ2(A2, one_hot_Y):
    """∂L/∂Z2 (k×m), from the softmax output A2 and the one-hot labels."""
    raise NotImplementedError("dZ2")


def dW2(dZ2, A1, m):
    """∂L/∂W2 (k×h)."""
    raise NotImplementedError("dW2")


def db2(dZ2, m):
    """∂L/∂b2 (k×1)."""
    raise NotImplementedError("db2")


def dZ1(W2, dZ2, Z1):
    """∂L/∂Z1 (h×m), back through W2 and the ReLU."""
    raise NotImplementedError("dZ1")


def dW1(dZ1, X, m):
    """∂L/∂W1 (h×n)."""
    raise NotImplementedError("dW1")


def db1(dZ1, m):
    """∂L/∂b1 (h×1)."""
    raise NotImplementedError("db1")
