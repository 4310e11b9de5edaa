"""A model of the replication state Redis keeps (PSYNC2), driven by the operations a Redis pair
sees: writes, replication, promotion, a restart without data. Used by the succession property
tests and the data-aware simulation."""
from vipd.core.succession import NO_REPLID, ReplInfo


class Node:
    """The replication state Redis keeps, driven by the operations a Redis pair sees."""
    ids = iter(range(1, 10 ** 9))

    def __init__(self, keys=0):
        self.replid, self.replid2, self.second, self.offset, self.keys = self.new_id(), NO_REPLID, -1, 0, keys
        self.primary = None

    def new_id(self):
        return f"{next(self.ids):040x}"

    def info(self):
        return ReplInfo("slave" if self.primary else "master", self.replid, self.replid2,
                        self.second, self.offset, self.keys)

    def write(self):
        assert self.primary is None
        self.offset += 10
        self.keys += 1

    def replicate_from(self, other):
        # PSYNC2: a full or partial sync leaves the replica on the primary's history and offset
        self.primary = other
        self.replid, self.offset, self.keys = other.replid, other.offset, other.keys

    def promote(self):
        # REPLICAOF NO ONE: new ID, the old one kept as ID2 with the offset at promotion + 1
        self.primary = None
        self.replid2, self.second, self.replid = self.replid, self.offset + 1, self.new_id()

    def restart_empty(self):
        self.__init__()
