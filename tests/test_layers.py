"""The packages form one-way layers: core (``submission``) ← ``evaluation`` ← ``applications``. No module imports a
module of a higher layer, and no modules import each other in a cycle, counting imports inside functions too."""

import ast
import os

from conftest import REPOSITORY_ROOT

LAYERS = ("submission", "evaluation", "applications")  # lowest first


def modules(root, packages=LAYERS):
  """{dotted module name: path} of every module of ``packages`` under ``root``."""
  found = {}
  for package in packages:
    for directory, _, files in os.walk(os.path.join(root, package)):
      for name in files:
        if name.endswith(".py"):
          path = os.path.join(directory, name)
          dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
          found[dotted.removesuffix(".__init__")] = path
  return found


def import_graph(found):
  """{module: {module it imports}} among ``found`` (``from a import b`` counts as importing ``a.b`` when that is a
  module, else ``a``); a module's own parent packages are left out (importing ``a.b`` runs ``a`` first anyway)."""
  graph = {}
  for name, path in found.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    targets = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        targets.update(alias.name for alias in node.names)
      elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        targets.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in found else node.module
                       for alias in node.names)
    graph[name] = {t for t in targets if t in found and t != name and not name.startswith(t + ".")}
  return graph


def layer(module):
  return LAYERS.index(module.split(".")[0])


def upward_imports(graph):
  return sorted((a, b) for a, targets in graph.items() for b in targets if layer(b) > layer(a))


def cycles(graph):
  """The strongly connected components of more than one module (Tarjan), each sorted."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph[v]):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while not component or component[-1] != v:
        component.append(stack.pop())
        on_stack.discard(component[-1])
      if len(component) > 1:
        found.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return sorted(found)


def test_no_module_imports_upwards_and_no_modules_import_each_other():
  graph = import_graph(modules(REPOSITORY_ROOT))
  assert {name.split(".")[0] for name in graph} == set(LAYERS)
  assert len(graph) > 60 and sum(map(len, graph.values())) > 150  # the walk found the code
  assert upward_imports(graph) == []
  assert cycles(graph) == []


def test_the_checks_find_an_upward_import_and_a_cycle_inside_a_function(tmp_path):
  sources = {
      "submission/__init__.py": "",
      "submission/a.py": "def f():\n  from submission import b\n",
      "submission/b.py": "import submission.a\nfrom evaluation.c import thing\n",
      "evaluation/__init__.py": "import submission\n",
      "evaluation/c.py": "thing = 1\n",
      "applications/__init__.py": "",
      "applications/d.py": "from evaluation import c\n",
  }
  for relative, text in sources.items():
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
  graph = import_graph(modules(str(tmp_path)))
  assert graph["applications.d"] == {"evaluation.c"} and graph["evaluation"] == {"submission"}
  assert upward_imports(graph) == [("submission.b", "evaluation.c")]
  assert cycles(graph) == [["submission.a", "submission.b"]]
