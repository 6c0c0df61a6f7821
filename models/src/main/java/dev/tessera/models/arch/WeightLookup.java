package dev.tessera.models.arch;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.Weight;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;

/** Finds GGUF tensors by llama.cpp name, checks their shape and type, and hands them to a backend as weights. */
public record WeightLookup(GgufFile file, Backend backend) {
    public Weight matrix(String name, int rows, int cols) {
        GgufTensorInfo t = require(name);
        if (t.dims().length != 2 || t.dims()[0] != cols || t.dims()[1] != rows)
            throw file.fail("tensor " + name + " has shape " + java.util.Arrays.toString(t.dims()) + ", expected [" + cols + ", " + rows + "]");
        return make(t, rows, cols);
    }

    public Weight vector(String name, int n) {
        GgufTensorInfo t = require(name);
        if (t.numElements() != n) throw file.fail("tensor " + name + " has " + t.numElements() + " elements, expected " + n);
        return make(t, 1, n);
    }

    public GgufTensorInfo require(String name) {
        GgufTensorInfo t = file.tensor(name);
        if (t == null) throw file.fail("missing tensor " + name);
        if (!t.type().computable()) throw file.fail("tensor " + name + " has type " + t.type() + ", which Tessera cannot compute with");
        return t;
    }

    private Weight make(GgufTensorInfo t, int rows, int cols) {
        return backend.weight(t.name(), t.type(), file.data(t), rows, cols);
    }
}
