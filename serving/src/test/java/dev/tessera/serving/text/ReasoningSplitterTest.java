package dev.tessera.serving.text;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The reasoning split of whole answers, and of the same answers cut into deltas at every place a tag can break. */
class ReasoningSplitterTest {

    @Test
    void qwen3OpensItsOwnBlock() {
        assertSplit(false, "<think>\nThe user greets me.\n</think>\n\nHello!", "\nThe user greets me.\n", "Hello!");
    }

    @Test
    void deepSeekR1StartsInsideTheBlockItsTemplateOpened() {
        assertTrue(ReasoningSplitter.promptOpensReasoning("<｜User｜>Hi<｜Assistant｜><think>\n"));
        assertFalse(ReasoningSplitter.promptOpensReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
        assertFalse(ReasoningSplitter.promptOpensReasoning("<|im_start|>assistant\n"));
        assertSplit(true, "Greeting.\n</think>\n\nHello!", "Greeting.\n", "Hello!");
    }

    @Test
    void anAnswerWithoutABlockIsAllContentWithItsWhitespace() {
        assertSplit(false, " Hello <think> is a tag", "", " Hello <think> is a tag");
        assertSplit(false, "<thin", "", "<thin");
        assertSplit(false, "<thinking>x", "", "<thinking>x");
    }

    @Test
    void aBlockThatNeverClosesIsAllReasoning() {
        assertSplit(false, "<think>still thinking </thi", "still thinking </thi", "");
        assertSplit(true, "only thoughts", "only thoughts", "");
    }

    @Test
    void anEmptyBlockLeavesTheReply() {
        assertSplit(false, "<think>\n\n</think>\n\nHi", "\n\n", "Hi");
        assertSplit(false, "<think></think>", "", "");
    }

    /** The answer whole, one character a delta, and in random cuts, must split the same way. */
    private static void assertSplit(boolean startsInReasoning, String answer, String reasoning, String content) {
        SplittableRandom random = new SplittableRandom(answer.hashCode());
        for (int trial = 0; trial < 40; trial++) {
            ReasoningSplitter s = new ReasoningSplitter(startsInReasoning);
            StringBuilder r = new StringBuilder(), c = new StringBuilder();
            for (int i = 0; i < answer.length(); ) {
                int n = trial == 0 ? answer.length() : trial == 1 ? 1 : 1 + random.nextInt(4);
                ReasoningSplitter.Parts p = s.feed(answer.substring(i, Math.min(answer.length(), i + n)));
                r.append(p.reasoning());
                c.append(p.content());
                i += n;
            }
            ReasoningSplitter.Parts p = s.finish();
            r.append(p.reasoning());
            c.append(p.content());
            assertEquals(reasoning, r.toString(), "reasoning of " + answer + ", trial " + trial);
            assertEquals(content, c.toString(), "content of " + answer + ", trial " + trial);
        }
    }
}
