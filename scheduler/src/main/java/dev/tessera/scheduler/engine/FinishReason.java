package dev.tessera.scheduler.engine;

/** Why a sequence ended. */
public enum FinishReason {
    /** A stop token was sampled (it is not emitted). */
    STOP,
    /** maxTokens were generated, or the sequence reached the end of the context. */
    LENGTH,
    /** {@link RequestHandle#cancel()} was called, or the engine closed. */
    CANCELLED
}
