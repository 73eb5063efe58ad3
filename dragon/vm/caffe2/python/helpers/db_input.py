"""``brew.db_input`` and the reader behind Caffe2's CreateDB / TensorProtosDBInput.

    data_uint8, label = brew.db_input(model, ["data_uint8", "label"], batch_size=64,
                                      db="mnist-train-nchw-lmdb", db_type="lmdb")

The init net's CreateDB makes a ``DBReader`` (a host-side blob); each run of the
net, TensorProtosDBInput asks it for ``read(batch_size)`` and feeds the arrays
to its output blobs before the compiled graph runs. Anything with that
``read`` method can stand in for the reader — a prefetching loader that keeps
the next batch ready in a thread slots in there without touching the net.
"""
from __future__ import annotations

import numpy as np

from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python.utils import Caffe2TensorToNumpyArray


class DBReader:
    """Sequential reader of an LMDB whose values are serialized caffe2 TensorProtos.

    ``read(n)`` returns one array per tensor of a record, the n records stacked on
    a new first axis; the cursor wraps around at the end of the database.
    Sharding (``num_shards``, ``shard_id``) keeps every num_shards-th record.
    """

    def __init__(self, db, db_type="lmdb", num_shards=1, shard_id=0):
        if db_type != "lmdb":
            raise RuntimeError(f"CreateDB: db_type '{db_type}' is not supported; use lmdb")
        try:
            import lmdb
        except ImportError:
            raise RuntimeError("CreateDB needs the lmdb package: pip install lmdb") from None
        try:
            self._env = lmdb.open(str(db), readonly=True, lock=False, readahead=False,
                                  subdir=True)
        except lmdb.Error as exc:
            raise RuntimeError(f"CreateDB: cannot open LMDB '{db}': {exc}") from None
        self.db = str(db)
        self.num_shards, self.shard_id = int(num_shards), int(shard_id)
        self._txn = self._env.begin(buffers=False)
        self._cursor = self._txn.cursor()
        if not self._cursor.first():
            raise RuntimeError(f"CreateDB: LMDB '{db}' is empty")
        self._position = 0
        self._skip_to_shard()

    def __len__(self):
        return self._env.stat()["entries"]

    def _advance(self):
        self._position += 1
        if not self._cursor.next():
            self._cursor.first()
            self._position = 0

    def _skip_to_shard(self):
        while self._position % self.num_shards != self.shard_id:
            self._advance()

    def records(self, count):
        """The next ``count`` raw values."""
        values = []
        for _ in range(count):
            values.append(self._cursor.value())
            for _ in range(self.num_shards):
                self._advance()
        return values

    def read(self, batch_size):
        """The next ``batch_size`` records as arrays, one per tensor of a record."""
        columns = None
        for value in self.records(batch_size):
            protos = caffe2_pb2.TensorProtos.FromString(value).protos
            arrays = [Caffe2TensorToNumpyArray(p) for p in protos]
            if columns is None:
                columns = [[] for _ in arrays]
            for column, array in zip(columns, arrays):
                column.append(array)
        return [np.stack(column) for column in columns]

    def close(self):
        self._env.close()


def db_input(model, blobs_out, batch_size, db, db_type):
    """Read ``blobs_out`` from ``db`` in batches: CreateDB in the init net, the reader op
    TensorProtosDBInput in the net. Returns the output BlobReferences."""
    reader = model.param_init_net.CreateDB([], "dbreader_" + str(db), db=db, db_type=db_type)
    return model.net.TensorProtosDBInput(reader, blobs_out, batch_size=batch_size)
