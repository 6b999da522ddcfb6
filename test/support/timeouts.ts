/**
 * vitest's own timeouts on the time scale (timeScale.ts), for every test file: a test gets 60 s, a
 * hook 120 s (importing @pulumi/aws takes seconds; synth-based files share one program run in a
 * beforeAll). A test or describe that needs longer passes its own `scaled(...).ms`.
 */
import { vi } from "vitest";
import { scaled } from "./timeScale";

vi.setConfig({ testTimeout: scaled(60).ms, hookTimeout: scaled(120).ms });
