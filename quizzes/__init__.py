"""Quiz engine and question bank for LPIC-2 202-450, lesson "Securing Postfix with TLS".

One bank (``quizzes/bank/*.yaml``) drives every face: the ``quizzes`` command (practice, exam, review,
stats, export, lint), the notebooks (:func:`quizzes.notebook.show_quiz`) and the course site
(:func:`quizzes.bank.to_json`). The library holds the logic; the CLI is a thin layer over it.
"""

__version__ = "0.1.0"
