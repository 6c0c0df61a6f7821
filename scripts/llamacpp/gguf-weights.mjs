// Bytes of weights one decode step reads, from a GGUF tensor directory (no dependencies).
//
//   node gguf-weights.mjs FILE
//
// Prints one JSON line. weight_bytes_per_token sums every 2-D tensor (each layer's matrices and
// output.weight), which a decode step streams once; token_embd.weight is left out because a step
// gathers one row of it, unless there is no output.weight (tied embeddings), in which case the
// output projection reads all of token_embd. 1-D tensors (norms) are also left out: kilobytes.
import { openSync, readSync, fstatSync, closeSync } from "node:fs";

// ggml type id -> [elements per block, bytes per block]; ggml.h / ggml.c type_traits.
const GGML_TYPES = {
    0: ["F32", 1, 4], 1: ["F16", 1, 2], 2: ["Q4_0", 32, 18], 3: ["Q4_1", 32, 20],
    6: ["Q5_0", 32, 22], 7: ["Q5_1", 32, 24], 8: ["Q8_0", 32, 34], 9: ["Q8_1", 32, 36],
    10: ["Q2_K", 256, 84], 11: ["Q3_K", 256, 110], 12: ["Q4_K", 256, 144], 13: ["Q5_K", 256, 176],
    14: ["Q6_K", 256, 210], 15: ["Q8_K", 256, 292], 24: ["I8", 1, 1], 25: ["I16", 1, 2],
    26: ["I32", 1, 4], 27: ["I64", 1, 8], 28: ["F64", 1, 8], 30: ["BF16", 1, 2],
};
// GGUF metadata value type id -> fixed byte size (strings 8, arrays 9 handled separately).
const SCALAR_SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

class Reader {
    constructor(path) {
        this.path = path;
        this.fd = openSync(path, "r");
        this.fileBytes = fstatSync(this.fd).size;
        this.position = 0;
    }
    bytes(count) {
        if (this.position + count > this.fileBytes) {
            throw new Error(`${this.path}: header read of ${count} bytes at byte ${this.position} passes the end, file is ${this.fileBytes} bytes`);
        }
        const buffer = Buffer.alloc(count);
        readSync(this.fd, buffer, 0, count, this.position);
        this.position += count;
        return buffer;
    }
    u32() { return this.bytes(4).readUInt32LE(0); }
    u64() { return Number(this.bytes(8).readBigUInt64LE(0)); }
    string() { return this.bytes(this.u64()).toString("utf8"); }
    skip(count) { this.position += count; }
    skipValue(type) {
        if (type === 8) this.skip(this.u64());
        else if (type === 9) {
            const elementType = this.u32(), count = this.u64();
            if (elementType in SCALAR_SIZES) this.skip(count * SCALAR_SIZES[elementType]);
            else for (let i = 0; i < count; i++) this.skipValue(elementType);
        } else if (type in SCALAR_SIZES) this.skip(SCALAR_SIZES[type]);
        else throw new Error(`${this.path}: metadata value type ${type} at byte ${this.position} is not a GGUF type`);
    }
}

export function readWeightBytes(path) {
    const reader = new Reader(path);
    try {
        const magic = reader.bytes(4).toString("latin1");
        if (magic !== "GGUF") throw new Error(`${path}: expected magic GGUF, found ${JSON.stringify(magic)}`);
        const version = reader.u32();
        if (version < 2) throw new Error(`${path}: expected GGUF version 2 or 3, found ${version}`);
        const numTensors = reader.u64(), numMetadata = reader.u64();
        for (let i = 0; i < numMetadata; i++) {
            reader.string();
            reader.skipValue(reader.u32());
        }
        const tensors = [];
        for (let i = 0; i < numTensors; i++) {
            const name = reader.string();
            const numDims = reader.u32();
            const dims = Array.from({ length: numDims }, () => reader.u64());
            const typeId = reader.u32();
            reader.u64(); // data offset
            const type = GGML_TYPES[typeId];
            if (!type) throw new Error(`${path}: tensor ${name} has ggml type ${typeId}, not in the size table`);
            const numElements = dims.reduce((a, b) => a * b, 1);
            tensors.push({ name, dims, type: type[0], sizeBytes: numElements / type[1] * type[2] });
        }
        const matrices = tensors.filter((t) => t.dims.filter((d) => d > 1).length >= 2);
        const hasOutput = tensors.some((t) => t.name === "output.weight");
        const read = matrices.filter((t) => t.name !== "token_embd.weight" || !hasOutput);
        const typeBytes = {};
        for (const t of read) typeBytes[t.type] = (typeBytes[t.type] ?? 0) + t.sizeBytes;
        return {
            file: path,
            file_bytes: reader.fileBytes,
            num_tensors: numTensors,
            tied_embeddings: !hasOutput,
            weight_bytes_per_token: read.reduce((sum, t) => sum + t.sizeBytes, 0),
            weight_bytes_by_type: typeBytes,
            all_tensor_bytes: tensors.reduce((sum, t) => sum + t.sizeBytes, 0),
        };
    } finally {
        closeSync(reader.fd);
    }
}

if (import.meta.url === `file://${process.argv[1]}`) {
    if (process.argv.length !== 3) {
        process.stderr.write("usage: node gguf-weights.mjs FILE\n");
        process.exit(2);
    }
    try {
        process.stdout.write(JSON.stringify(readWeightBytes(process.argv[2])) + "\n");
    } catch (error) {
        process.stderr.write(`gguf-weights: ${error.message}\n`);
        process.exit(1);
    }
}
