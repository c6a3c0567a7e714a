/** `skiff config create|ls|inspect|rm`: the secret commands (secret.ts), for configs. */
import type { Command } from 'commander';
import { registerDataCommands } from './secret.js';

export function registerConfigCommands(program: Command): void {
  registerDataCommands(program, 'config');
}
