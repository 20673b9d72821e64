"""Socratic CoT (Shridhar, Stolfo, Sachan 2023): decomposition data, QG / QA / unified students, the
iterative loop.  Formats: :mod:`.formats`; data: :mod:`.decompositions`; training instances:
:mod:`.instances`; inference: :mod:`.loop`; scoring: :mod:`.scoring`; the stages the notebooks chain, each a cached run: :mod:`.pipeline`.
"""
from .decompositions import (Decomposition, gold_decompositions, parse_numbered, read_teacher_decompositions,
                             sample_teacher_decompositions, teacher_demos)
from .formats import END, MARKERS, QUESTION, ANSWER, parse_unified, unified_target
from .loop import LoopConfig, Trace, solve_iterative, solve_one
from .settings import SocraticSettings, socratic_settings

__all__ = ["Decomposition", "gold_decompositions", "parse_numbered", "read_teacher_decompositions",
           "sample_teacher_decompositions", "teacher_demos", "END", "MARKERS", "QUESTION", "ANSWER",
           "parse_unified", "unified_target", "LoopConfig", "Trace", "solve_iterative", "solve_one",
           "SocraticSettings", "socratic_settings"]
