/** busboy, as the chunk `form-body.ts` loads at the first multipart post. */
// First the instance's code, as every chunk loaded at first use does (why: handlers/store-chunk.ts).
import './instance.ts';

export { default } from 'busboy';
