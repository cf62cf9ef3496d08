"""The one error type for bad user input: the command line turns it into exit code 2."""


class BadInput(Exception):
    """Bad input from the user: a file, a field in it, and what is wrong.

    ``where`` names the file (or command-line option), ``field`` the key inside it (or ``None``).
    The message is one line, printed without a traceback, and the command writes nothing.
    """

    def __init__(self, where: str, field: str | None, problem: str):
        self.where, self.field, self.problem = str(where), field, problem
        super().__init__(self.message())

    def message(self) -> str:
        at = f"{self.where}: {self.field}" if self.field else self.where
        return f"{at}: {self.problem}"


class Problems(BadInput):
    """Several bad inputs found in one pass (the pre-flight): printed one line each, exit code 2."""

    def __init__(self, problems: list[BadInput]):
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(first.where, first.field, first.problem)

    def lines(self) -> list[str]:
        return [p.message() for p in self.problems]


class Failed(Exception):
    """An operation failed for a reason outside the input (no network, a run that failed): the
    command line prints the one-line message and exits with code 1."""
