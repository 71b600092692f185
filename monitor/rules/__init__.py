"""Watch rules: the language (spec), the fields a rule reads of a signing record (fields) and
the compiled engine that judges records (engine).

Above entries: may import core, tlog, trust and entries.
"""
