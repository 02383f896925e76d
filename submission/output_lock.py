"""One writer per output directory: a lock file beside it that names its holder.

Every command that writes an output directory (``./run_local.sh`` and each sweep point through
``evaluation.pipeline``, ``submission.train``, ``submission.postprocess``, ``evaluation.evaluate`` and each batch
pair, ``run.sh`` for its experiment directory) first claims ``DIR`` by taking an exclusive ``flock`` on
``.<name>.lock`` next to it. A second writer stops at once with one line naming the holder, which the lock file
records (pid, host, start time, command).

The file lives beside the directory, not in it, so that it outlasts an ``--overwrite``'s rename of a new run over
the old one, and a directory that does not exist yet can be claimed before anything is created. ``flock`` belongs
to the open file: the kernel releases it when its holder exits, however it exits, so a crash never leaves a lock
that blocks (no deadlock, and no guessing from pids whether a holder still lives): a leftover file of a dead
holder is taken over, with a line saying so. The holder removes the file on release; a writer that opened the
file just before that unlink would hold a lock on a name that no longer exists, so after locking each writer checks
that the path still names the file it locked, and starts again if not.

The holder of a directory is the only one that writes ``.<name>.partial-*`` beside it and ``.<entry>.partial-*``
inside it (``submission.atomic``), so what it finds of those when it takes the lock was left by a writer that
died, and it removes them — unless a ``.<name>.old-*`` beside it says the writer died between the two renames of an
``atomic_directory`` (then the partial may be the complete new version, and both are left for a person to judge).

This module imports nothing heavy: ``./run_local.sh`` claims its output before TensorFlow is imported.
"""

import atexit
import datetime
import errno
import fcntl
import glob
import json
import os
import shutil
import socket
import sys

from submission.errors import UserError

# Locks this process holds, by lock file path: [OutputLock, depth]. A step inside a command (the pipeline's
# training step) claims the directory its caller already holds, or one inside it, without refusing itself.
_HELD = {}


def lock_path(directory):
  directory = os.path.abspath(directory)
  return os.path.join(os.path.dirname(directory), f".{os.path.basename(directory)}.lock")


def describe_holder(record):
  if not record:
    return "another process (its record is being written)"
  return f"pid {record.get('pid')} on {record.get('host')}, started {record.get('started')}"


def read_record(path):
  try:
    with open(path) as f:
      return json.loads(f.read() or "null")
  except (OSError, ValueError):
    return None


class OutputLock:
  """The claim on one output directory; ``claim`` acquires it (re-entrant within this process)."""

  def __init__(self, directory, descriptor=None, pid=None):
    self.directory = os.path.abspath(directory)
    self.path = lock_path(directory)
    self.descriptor = descriptor  # an inherited open file (run.sh's), locked for its owner ``pid``
    self.pid = pid or os.getpid()
    self.file = None

  def acquire(self):
    while True:
      try:
        if self.descriptor is not None:
          handle = os.fdopen(os.dup(self.descriptor), "r+")
        else:
          os.makedirs(os.path.dirname(self.path), exist_ok=True)
          handle = open(self.path, "a+")  # pylint: disable=consider-using-with  (held until release)
      except OSError as e:
        raise UserError(f"cannot lock output directory {self.directory}: {e.filename or self.path}: "
                        f"{e.strerror}") from e
      try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        handle.close()
        if e.errno not in (errno.EAGAIN, errno.EACCES):
          raise UserError(f"cannot lock output directory {self.directory} ({self.path}: {e.strerror})") from e
        holder = describe_holder(read_record(self.path))
        raise UserError(f"output directory {self.directory} is being written by {holder}; wait for it to finish "
                        f"or use another output directory (its command: {self.path})") from None
      try:
        same = os.path.samestat(os.fstat(handle.fileno()), os.stat(self.path))
      except FileNotFoundError:
        same = False
      if same:
        break
      handle.close()  # the holder removed the file between our open and our lock: claim the new one
      if self.descriptor is not None:
        raise UserError(f"the lock file {self.path} was replaced while it was being taken; try again")
    previous = read_record(self.path)
    if previous and previous.get("pid") and previous.get("pid") != self.pid:
      print(f"[lock] {self.directory}: taking over from {describe_holder(previous)}, which ended without "
            f"releasing it", file=sys.stderr, flush=True)
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": self.pid, "host": socket.gethostname(),
                             "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                             "command": " ".join(sys.argv)}))
    handle.flush()
    self.file = handle
    remove_leftovers(self.directory)

  def release(self):
    if self.file is None:
      return
    try:
      if self.descriptor is None:
        os.remove(self.path)  # still ours: nobody else can hold it
    except FileNotFoundError:
      pass
    finally:
      fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
      self.file.close()
      self.file = None


def claim(directory):
  """Claims ``directory`` for this process (a UserError naming the holder when another has it); returns a handle
  whose ``release()`` gives the claim back (the outermost release of a directory claimed twice)."""
  path = lock_path(directory)
  if ".partial-" in os.path.basename(os.path.normpath(directory)):
    # submission.atomic's temporary directory: its random name is known only to the writer that holds the final
    # path's claim (an --overwrite's new run), so there is nothing to lock, and no lock file to leave behind.
    return _Claim(None)
  if path not in _HELD:
    lock = OutputLock(directory)
    lock.acquire()
    _HELD[path] = [lock, 0]
  _HELD[path][1] += 1
  return _Claim(path)


class _Claim:

  def __init__(self, path):
    self.path = path

  def release(self):
    if self.path is None:
      return
    entry = _HELD[self.path]
    entry[1] -= 1
    if entry[1] == 0:
      del _HELD[self.path]
      entry[0].release()
    self.path = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


def remove_leftovers(directory):
  """Removes what a dead writer of ``directory`` left: its partial siblings and the partial entries inside it."""
  parent, name = os.path.split(directory)
  if glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.old-*")):
    print(f"[lock] {directory}: a writer died while replacing it; its old and new versions are beside it "
          f"(.{name}.old-*, .{name}.partial-*): keep one and remove the other", file=sys.stderr, flush=True)
    return
  leftovers = glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.partial-*"))
  if os.path.isdir(directory):
    # An entry inside may have a writer of its own (``submission.train`` on DIR/model): its partials are its own.
    leftovers += [path for path in glob.glob(os.path.join(glob.escape(directory), ".*.partial-*"))
                  if not is_held(os.path.join(directory, os.path.basename(path)[1:].split(".partial-")[0]))]
  for path in leftovers:
    print(f"[lock] removing {path}, left by a writer that was stopped", file=sys.stderr, flush=True)
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      os.remove(path)


def is_held(directory):
  """Whether some process holds ``directory``'s lock now."""
  path = lock_path(directory)
  if path in _HELD:
    return True
  try:
    with open(path) as f:
      try:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
      except OSError:
        return True
      fcntl.flock(f.fileno(), fcntl.LOCK_UN)
  except OSError:
    pass
  return False


@atexit.register
def _release_all():
  """Gives back what this process still holds when it exits normally (the kernel would release the locks anyway;
  this removes the files, so that the next writer does not report a takeover)."""
  for lock, _ in list(_HELD.values()):
    lock.release()
  _HELD.clear()


def main(argv=None):
  """``python -m submission.output_lock DIRECTORY FD PID``: locks the open file FD (inherited from a shell that
  opened ``.<name>.lock`` beside DIRECTORY) for the shell PID, which keeps the lock until it exits (run.sh).
  ``python -m submission.output_lock DIRECTORY``: one line saying why DIRECTORY's lock cannot be taken (for a
  shell that could not open it: under a file, in /proc)."""
  from submission import cli  # pylint: disable=import-outside-toplevel
  argv = argv if argv is not None else sys.argv[1:]
  if len(argv) == 1:
    cli.main_guard(lambda: claim(argv[0]).release())
    return
  directory, descriptor, pid = argv
  cli.main_guard(OutputLock(directory, int(descriptor), int(pid)).acquire)


if __name__ == "__main__":
  main()
