package dev.tessera.serving.text;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class StopStringMatcherTest {

    @Test
    void passesEverythingWithoutStops() {
        StopStringMatcher m = new StopStringMatcher(List.of());
        assertEquals("abc", m.push("abc"));
        assertEquals("", m.flush());
    }

    @Test
    void holdsBackAPossibleStartAndCutsASplitStop() {
        StopStringMatcher m = new StopStringMatcher(List.of("END"));
        assertEquals("hello ", m.push("hello E"));
        assertEquals("", m.push("N"));
        assertEquals("", m.push("D world"));
        assertTrue(m.stopped());
        assertEquals("", m.push("more"));
        assertEquals("", m.flush());
    }

    @Test
    void releasesHeldTextThatTurnsOutNotToBeAStop() {
        StopStringMatcher m = new StopStringMatcher(List.of("END"));
        assertEquals("a", m.push("aEN"));
        assertEquals("ENx", m.push("x"));
        assertEquals("", m.push("E"));
        assertEquals("E", m.flush());
        assertFalse(m.stopped());
    }

    @Test
    void earliestStopWins() {
        StopStringMatcher m = new StopStringMatcher(List.of("cd", "b"));
        assertEquals("a", m.push("abcd"));
        assertTrue(m.stopped());
    }

    @Test
    void stopAtTheVeryStartGivesNoText() {
        StopStringMatcher m = new StopStringMatcher(List.of("\n"));
        assertEquals("", m.push("\nabc"));
        assertTrue(m.stopped());
    }
}
