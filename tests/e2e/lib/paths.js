// Where things are: the repository, the gateway binary, the artifacts.

import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLIENT_DIR = path.join(REPO, 'client');
// A sanitizer or other build is tested by pointing GATEWAY_BIN at it.
export const GATEWAY_BIN = process.env.GATEWAY_BIN || path.join(REPO, 'build/gateway');
export const ARTIFACTS = path.join(REPO, 'tests/e2e/artifacts');
export const LOGS = path.join(ARTIFACTS, 'logs');
