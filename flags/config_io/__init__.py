"""Configuration as code: a tenant's segments and live flags as one document, and back.

Export writes content fields only (no version, timestamps or archive state): segments and flags sorted
by key, nested objects by key, so the same ruleset always gives the same bytes and diffs well in git.

Import (`ruleset_import`) plans the whole change before it writes anything:

1. check the document's shape (`format_version`, lists of objects, unique keys);
2. validate every segment, then every flag against the segments and live flags *as they will be after
   the import* (segment references, prerequisites, cycles, depth), and every live flag the file leaves
   alone that the import would break;
3. compare with what is stored: an entity whose content is unchanged is not written (no new version, no
   audit row), so importing the same file twice changes nothing;
4. apply, in one transaction and through the write services (so with the same validation, versions,
   audit entries and cache invalidation as the API): segments, then flags in prerequisite order, then,
   with `prune`, archive the live flags and delete the segments that the file does not name.

A flag missing from the file is left alone unless `prune` is given. A key that belongs to an archived
flag is refused (restore the flag first): importing must not silently bring back a retired flag.
"""

from flags.config_io.documents import FORMAT_VERSION, Format, document_dumps, document_loads, ruleset_export
from flags.config_io.importing import (
    IMPORT_ACTOR,
    EntityChange,
    ImportPlan,
    ImportRejected,
    Problem,
    ruleset_import,
)

__all__ = [
    "FORMAT_VERSION",
    "IMPORT_ACTOR",
    "EntityChange",
    "Format",
    "ImportPlan",
    "ImportRejected",
    "Problem",
    "document_dumps",
    "document_loads",
    "ruleset_export",
    "ruleset_import",
]
