package dev.tessera.models.arch;

import dev.tessera.kernels.Weight;

/**
 * The weights outside the layer loop: token embeddings in, final norm and classifier out. Held by the rank that
 * speaks token ids (the master); other tensor-parallel ranks get the embedded rows from it through the collective.
 */
public record ModelHead(Weight tokenEmbedding, Weight outputNorm, Weight output) {}
