"""The one exception type that command-line entry points turn into a single ``error: ...`` line."""


class UserError(Exception):
  """Bad input or state the user can fix: the message says what was wrong and what to do."""
