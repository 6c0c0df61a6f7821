package dev.tessera.scheduler.engine;

import dev.tessera.models.sample.RowLogprobs;
import dev.tessera.models.sample.TokenLogprob;
import dev.tessera.scheduler.sched.SequenceState;

/**
 * The other half of a step's logit rows: those of prompt positions whose request asks for the prompt's
 * log-probabilities. The row of position p scores prompt token p + 1, from the raw logits.
 */
final class PromptScoring {
    private static final TokenLogprob[] NONE = new TokenLogprob[0];
    private final int vocabSize;
    private final RowLogprobs row;

    PromptScoring(int vocabSize) {
        this.vocabSize = vocabSize;
        this.row = new RowLogprobs(vocabSize);
    }

    /** Scores the next {@code numRows} prompt positions of s from logit rows firstRow.. of the step. */
    void score(SequenceState s, float[] logits, int firstRow, int numRows) {
        int k = s.handle.request().promptLogprobs();
        for (int j = 0; j < numRows; j++) {
            int p = s.promptScored;
            row.read(logits, (firstRow + j) * vocabSize);
            s.promptChosen[p] = row.logprob(s.history[p + 1]);
            s.promptTop[p] = k > 0 ? row.top(k) : NONE;
            s.promptScored++;
        }
    }
}
