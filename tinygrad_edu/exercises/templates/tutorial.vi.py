"""Hàm backward_prop của bài hướng dẫn, từng đạo hàm một: hãy viết từng hàm (rồi chạy: tinygrad-edu exercises check .).

Mạng nơ-ron, theo cách sắp xếp của bài hướng dẫn (mỗi ví dụ là một cột, có m cột):

    Z1 = W1·X + b1,   A1 = ReLU(Z1),   Z2 = W2·A1 + b2,   A2 = softmax(Z2)

X là n×m, W1 là h×n, b1 là h×1, W2 là k×h, b2 là k×1, và one_hot_Y là k×m. Như trong bài hướng dẫn, dZ2 và
dZ1 là đạo hàm của hàm loss lấy tổng trên m ví dụ; dW và db là đạo hàm của loss trung bình, nên chúng chia cho m.
Mỗi hàm trả về một mảng numpy có cùng kích thước với đại lượng mà nó là đạo hàm.
"""
import numpy as np


def dZ2(A2, one_hot_Y):
    """∂L/∂Z2 (k×m), từ đầu ra softmax A2 và nhãn one-hot."""
    raise NotImplementedError("dZ2")


def dW2(dZ2, A1, m):
    """∂L/∂W2 (k×h)."""
    raise NotImplementedError("dW2")


def db2(dZ2, m):
    """∂L/∂b2 (k×1)."""
    raise NotImplementedError("db2")


def dZ1(W2, dZ2, Z1):
    """∂L/∂Z1 (h×m), lan truyền ngược qua W2 và ReLU."""
    raise NotImplementedError("dZ1")


def dW1(dZ1, X, m):
    """∂L/∂W1 (h×n)."""
    raise NotImplementedError("dW1")


def db1(dZ1, m):
    """∂L/∂b1 (h×1)."""
    raise NotImplementedError("db1")
