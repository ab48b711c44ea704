"""Exercises: a workbook of backward rules to derive (workbook.py) and the gradient doctor that grades it.

Sits on top of the library, beside the command line (`tinygrad-edu exercises start|check`); the core never
imports it. grading.py holds the exercises as data (part one's table; part two's, the layers, in part2.py),
their examples and references, and the verdict, one mechanism for both parts; mistakes.py the one table of
known mistakes; runner.py the checker's side of the check (the time limits, the child's session); child.py the
child process, the only one that imports the learner's code, which sends back plain arrays (wire.py) and never
sees an expected gradient.
"""
