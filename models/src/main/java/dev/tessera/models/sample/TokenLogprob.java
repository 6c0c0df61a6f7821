package dev.tessera.models.sample;

/** A token id and its natural-log probability under the model's distribution (see {@link Sampler#chosen()}). */
public record TokenLogprob(int token, float logprob) {
}
