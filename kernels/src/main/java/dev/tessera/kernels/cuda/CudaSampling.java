package dev.tessera.kernels.cuda;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tessera.kernels.cuda.LaunchGeometry.SAMPLE_THREADS;

/**
 * Sampling where the logits are: greedy argmax and top-k/top-p per row, so only the ids travel to the host. Both run
 * eagerly (their ids are read back at once), after the backend has launched what it deferred.
 */
final class CudaSampling {
    private final CudaBackend backend;
    private final CudaDevice device;
    private final CudaKernels kernels;
    /** Ids out, uniforms in: 8 bytes per row, grown on demand (freed with the backend's other allocations). */
    private long sampleBuffer, sampleBufferBytes;

    CudaSampling(CudaBackend backend, CudaDevice device, CudaKernels kernels) {
        this.backend = backend;
        this.device = device;
        this.kernels = kernels;
    }

    void argmax(CudaActivations logits, int numRows, int[] out) {
        long buf = sampleBuffer(8L * numRows);
        kernels.args().ptr(logits.pointer()).i32(logits.width()).ptr(buf)
                .launch(kernels.argmax, "argmax", numRows, 1, SAMPLE_THREADS);
        readInts(buf, out, numRows);
        // The kernel leaves INT_MAX where no value ranked (all -inf or NaN).
        for (int r = 0; r < numRows; r++) if (out[r] < 0 || out[r] >= logits.width()) out[r] = -1;
    }

    void sampleTopKTopP(CudaActivations logits, int numRows, int topK, float topP, float temperature, float[] uniforms, int[] out) {
        long buf = sampleBuffer(8L * numRows);
        MemorySegment host = backend.bounce(4L * numRows);
        MemorySegment.copy(uniforms, 0, host, ValueLayout.JAVA_FLOAT, 0, numRows);
        device.copyToDevice(buf + 4L * numRows, host, 4L * numRows);
        kernels.args().ptr(logits.pointer()).i32(logits.width()).i32(topK).f32(topP).f32(temperature)
                .ptr(buf + 4L * numRows).ptr(buf)
                .launch(kernels.sampleTopKTopP, "sample_top_k_top_p", numRows, 1, SAMPLE_THREADS);
        readInts(buf, out, numRows);
    }

    private void readInts(long src, int[] dst, int n) {
        MemorySegment host = backend.bounce(4L * n);
        device.copyToHost(host, src, 4L * n);
        device.synchronize();
        MemorySegment.copy(host, ValueLayout.JAVA_INT, 0, dst, 0, n);
    }

    private long sampleBuffer(long bytes) {
        if (bytes > sampleBufferBytes) {
            backend.free(sampleBuffer);
            sampleBuffer = backend.allocate(bytes);
            sampleBufferBytes = bytes;
        }
        return sampleBuffer;
    }
}
