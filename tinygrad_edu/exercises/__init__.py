"""Exercises: a workbook of backward rules to derive (workbook.py) and the gradient doctor that grades it.

Sits on top of the library, beside the command line (`tinygrad-edu exercises start|check`); the core never
imports it. grading.py holds the exercises and their references, mistakes.py the one table of known
mistakes, runner.py the child process that runs the learner's code under a time limit.
"""
