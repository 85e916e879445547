// The jobs routes answer a part's refusal with its status; its own module so every part can throw it
// without importing the service that is built from them.
export class JobsHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'JobsHttpError';
  }
}
