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
