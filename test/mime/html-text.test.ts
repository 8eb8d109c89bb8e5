/** The generated text alternative of an HTML body. */
import { describe, expect, it } from 'vitest';
import { asHtmlDocument, htmlToText } from '../../functions/mime/html-text.ts';

describe('htmlToText', () => {
  it('blocks, lists, links, images, tables, pre, entities; script/style/head/comments dropped', () => {
    const html =
      '<!doctype html><html><head><title>T</title><style>p{color:red}</style></head><body>' +
      '<h1>Hello &amp; welcome</h1><p>First   para\nwith <b>bold</b> and ' +
      '<a href="https://x.example/a?b=1&amp;c=2">a link</a>.</p><ul><li>one</li><li>two</li></ul>' +
      '<table><tr><th>Name</th><td>Ada</td></tr><tr><th>Msg</th><td>line1<br>line2</td></tr></table>' +
      '<pre>  keep\n   this</pre><p>x &lt; y &#233; &#x1F600; <img src=a alt="logo"> 3 < 4</p>' +
      '<script>alert("no")</script><!-- hidden --></body></html>';
    expect(htmlToText(html)).toBe(
      'Hello & welcome\n\nFirst para with bold and a link <https://x.example/a?b=1&c=2>.\n\n' +
        '- one\n- two\n\nName Ada\nMsg line1\nline2\n\n  keep\n   this\n\nx < y é 😀 [logo] 3 < 4\n',
    );
  });

  it('mailto links show the address; unclosed comments and scripts end the text', () => {
    expect(htmlToText('<a href="mailto:team@example.com">write</a> us<!-- open')).toBe(
      'write <team@example.com> us\n',
    );
    expect(htmlToText('before<script>var a = "<p>";')).toBe('before\n');
  });

  it('hostile shapes are read in one pass (stray "<", unclosed tags, many blocks)', () => {
    for (const input of [
      '<'.repeat(200_000),
      '<a '.repeat(100_000),
      '<p>'.repeat(100_000),
      '<!<>'.repeat(100_000),
      `<pre>${' <br>'.repeat(100_000)}`,
    ]) {
      expect(typeof htmlToText(input)).toBe('string');
    }
  });
});

describe('asHtmlDocument', () => {
  it('wraps a fragment, leaves a document alone', () => {
    expect(asHtmlDocument('<p>x</p>')).toBe('<html><body><p>x</p></body></html>');
    expect(asHtmlDocument('<!doctype html><HTML lang="en"><p>x</p></HTML>')).toBe(
      '<!doctype html><HTML lang="en"><p>x</p></HTML>',
    );
  });
});
