/** Skiff's release, as package.json says (common/version.test.ts keeps the two equal): `skiff --version`, `skiffd --version`, the Docker API's version. */
export const SKIFF_VERSION = '0.1.0';
