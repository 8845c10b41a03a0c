# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Make ``ansible_collections.layered.eks_rds`` importable from a plain checkout.

The checkout is exposed as ``.collections/ansible_collections/layered/eks_rds``
(a relative symlink back to the repository root, the same one ``ansible.cfg``
relies on) and ``.collections`` is put first on ``sys.path``. The installed
``ansible_collections`` is a namespace package, so ``amazon.aws`` and the other
bundled collections stay importable next to it. ``tests/stack`` is importable
too, for the tests that start the stack's moto launcher.
"""

import contextlib
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, ".collections")
# the local stack's helpers (moto launcher process control) for tests that need a live server
STACK_DIR = os.path.join(REPO_ROOT, "tests", "stack")


def _ensure_collection_link():
    namespace_dir = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "layered")
    link = os.path.join(namespace_dir, "eks_rds")
    os.makedirs(namespace_dir, exist_ok=True)
    if not os.path.lexists(link):
        with contextlib.suppress(FileExistsError):
            os.symlink(os.path.join("..", "..", ".."), link)


_ensure_collection_link()
if COLLECTIONS_ROOT in sys.path:
    sys.path.remove(COLLECTIONS_ROOT)
sys.path.insert(0, COLLECTIONS_ROOT)
if STACK_DIR not in sys.path:
    sys.path.append(STACK_DIR)
