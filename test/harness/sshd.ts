/**
 * The private sshd of the tests: moved to scripts/local/sshd.ts (`npm run local` starts one too);
 * re-exported so the tests keep importing it from the harness.
 */
export * from '../../scripts/local/sshd';
