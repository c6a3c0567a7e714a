// @peculiar/x509 v2 resolves its algorithm providers through tsyringe, which needs a Reflect
// metadata polyfill loaded BEFORE the library evaluates. ESM evaluates imports in order, so every
// Skiff module takes x509 from here, never from '@peculiar/x509' directly.
import 'reflect-metadata';

export * from '@peculiar/x509';
