package dev.tessera.kernels.conformance;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.TensorType;

/**
 * One case of the conformance suite: an op sequence run once on the reference backend and once on the backend under
 * test, from the same inputs (made when the case is built, so both runs read the same numbers). The run returns every
 * output it wants compared, concatenated. {@code weightType} names the weight format the case needs (null when none),
 * so a backend without that format reports the case as unsupported instead of failing it, as ggml's test-backend-ops
 * does with {@code supports_op}.
 *
 * @param tolerance the largest allowed max |got - expected| / max |expected|
 */
public record ConformanceCase(String name, String op, TensorType weightType, double tolerance, Run run) {

    /** The op sequence on one backend; returns its outputs downloaded to the host. */
    @FunctionalInterface
    public interface Run {
        float[] on(Backend backend);
    }
}
