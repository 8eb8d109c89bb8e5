/**
 * Upload filtering for public forms (issue 10: setup.exe and invoice.pdf.html went through; Gmail rejects such
 * mail): type from content, Gmail's blocked extensions, double extensions, archives holding executables, text
 * charset, per-form allowedTypes, safe names. ZIPs are made by Python's zipfile (an independent writer).
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { SendError } from '../../functions/send/errors.ts';
import {
  acceptUploads,
  BLOCKED_EXTENSIONS,
  detectType,
  safeFileName,
  type Upload,
  zipEntryNames,
} from '../../functions/send/uploads.ts';
import { requireTool } from '../support/tools.ts';

const bytes = (...parts: Array<string | number[]>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const PDF = bytes('%PDF-1.7\n', [0xe2, 0xe3, 0xcf, 0xd3], '\n1 0 obj\n');
const PNG = bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13], 'IHDR');
const PE = bytes(
  'MZ',
  [0x90, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xff, 0xff],
  'This program cannot be run in DOS mode',
);
const ELF = bytes([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0]);
const HTML = Buffer.from(
  '<!DOCTYPE html><html><body><form action="https://evil.example">…</form></body></html>',
);
const SVG = Buffer.from(
  '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
);

function zip(entries: Record<string, string>): Buffer {
  const script =
    'import io,json,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,"w",zipfile.ZIP_DEFLATED)\n' +
    'for k,v in json.loads(sys.argv[1]).items(): z.writestr(k,v)\nz.close()\nsys.stdout.buffer.write(b.getvalue())';
  return execFileSync(requireTool('python3'), ['-c', script, JSON.stringify(entries)]);
}

const up = (filename: string, content: Uint8Array, field = 'file'): Upload => ({ field, filename, content });

function refused(files: Upload[], policy = {}): Array<{ field: string; code: string; message: string }> {
  try {
    acceptUploads(files, policy);
  } catch (e) {
    if (e instanceof SendError && e.code === 'validation_failed') return e.errors ?? [];
    throw e;
  }
  throw new Error('expected a validation error');
}

describe('detectType: from the content, not the name or the browser', () => {
  it('signatures', () => {
    expect(detectType(PDF, 'png')).toBe('application/pdf');
    expect(detectType(PNG, 'pdf')).toBe('image/png');
    expect(detectType(PE, 'pdf')).toBe('application/x-executable');
    expect(detectType(ELF, 'txt')).toBe('application/x-executable');
    expect(detectType(HTML, 'pdf')).toBe('text/html');
    expect(detectType(SVG, 'png')).toBe('image/svg+xml');
    const docx = zip({ '[Content_Types].xml': '<Types/>', 'word/document.xml': '<w/>' });
    expect(detectType(docx, 'docx')).toBe(
      'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    );
    expect(detectType(docx, 'zip')).toBe('application/zip');
  });

  it('text: UTF-8 without NUL is text (by extension for csv/ics/json), other bytes octet-stream', () => {
    expect(detectType(Buffer.from('a,b\n1,2\n'), 'csv')).toBe('text/csv');
    expect(detectType(Buffer.from('Grüße\n'), 'txt')).toBe('text/plain');
    expect(detectType(Buffer.from('MZ is a text too\n'), 'txt')).toBe('text/plain');
    expect(detectType(Buffer.from([0x47, 0x72, 0xfc, 0xdf, 0x65]), 'txt')).toBe('application/octet-stream');
    expect(detectType(Buffer.from('BMW\n'), 'txt')).toBe('text/plain');
  });
});

describe('acceptUploads', () => {
  it("refuses Gmail's blocked extensions and executable content, whatever the name", () => {
    expect(BLOCKED_EXTENSIONS.size).toBeGreaterThan(50);
    for (const name of [
      'setup.exe',
      'SETUP.EXE',
      'run.bat',
      'a.js',
      'x.msi',
      'setup.exe.',
      'setup.exe ',
      'x.pdf.scr',
    ]) {
      expect(refused([up(name, PDF)]), name).toEqual([
        { field: 'file', code: 'file_type_blocked', message: 'executable files are not accepted' },
      ]);
    }
    expect(refused([up('invoice.pdf', PE)])[0]!.code).toBe('file_type_blocked');
    expect(refused([up('photo.png', ELF)])[0]!.code).toBe('file_type_blocked');
  });

  it('refuses a double extension ending in .html/.htm/.svg, and HTML or SVG under another name', () => {
    for (const name of ['invoice.pdf.html', 'invoice.pdf.htm', 'logo.png.svg']) {
      expect(refused([up(name, HTML)])[0], name).toMatchObject({ code: 'file_type_blocked' });
    }
    expect(refused([up('invoice.pdf', HTML)])[0]!.code).toBe('file_type_mismatch');
    // markup in a file named as plain text goes as the text it is named
    expect(acceptUploads([up('notes.txt', Buffer.from('<p>hello</p>\n'))])[0]!.contentType).toBe(
      'text/plain; charset=utf-8',
    );
    expect(refused([up('logo.png', SVG)])[0]!.code).toBe('file_type_mismatch');
    expect(acceptUploads([up('page.html', HTML)])[0]!.contentType).toBe('text/html; charset=utf-8');
  });

  it('refuses an archive that holds an executable (read from its central directory)', () => {
    const bad = zip({ 'docs/readme.txt': 'hi', 'docs/setup.exe': 'MZ' });
    expect(zipEntryNames(bad)).toEqual(['docs/readme.txt', 'docs/setup.exe']);
    expect(refused([up('files.zip', bad)])[0]!.code).toBe('file_type_blocked');
    const good = zip({ 'a.txt': 'a', 'b.pdf': '%PDF-1.4' });
    expect(acceptUploads([up('files.zip', good)])[0]!.contentType).toBe('application/zip');
    expect(zipEntryNames(Buffer.from('PK\x03\x04 truncated'))).toEqual([]);
  });

  it('gives the detected type, with charset=utf-8 for text; names every refused field', () => {
    const out = acceptUploads([
      up('notes.txt', Buffer.from('Grüße\n')),
      up('scan.pdf', PDF),
      up('x.png', PNG),
    ]);
    expect(out.map((a) => a.contentType)).toEqual([
      'text/plain; charset=utf-8',
      'application/pdf',
      'image/png',
    ]);
    const errs = refused([up('ok.pdf', PDF, 'a'), up('bad.exe', PE, 'b'), up('bad.pdf.html', HTML, 'c')]);
    expect(errs.map((e) => e.field)).toEqual(['b', 'c']);
  });

  it('attachments.allowedTypes narrows further (type/subtype or type/*)', () => {
    const policy = { allowedTypes: ['application/pdf', 'image/*'] };
    expect(acceptUploads([up('a.pdf', PDF), up('b.png', PNG)], policy)).toHaveLength(2);
    expect(refused([up('a.txt', Buffer.from('text'))], policy)).toEqual([
      {
        field: 'file',
        code: 'file_type_not_allowed',
        message: 'files of type text/plain are not accepted by this form',
      },
    ]);
    // the browser's claim plays no part: a PDF named .png is a PDF
    expect(acceptUploads([up('really-a-pdf.png', PDF)], { allowedTypes: ['application/pdf'] })).toHaveLength(
      1,
    );
  });

  it('safe names: no path, control, bidi or Windows-forbidden characters; never empty', () => {
    expect(safeFileName('C:\\fakepath\\report.pdf')).toBe('report.pdf');
    expect(safeFileName('../../etc/passwd')).toBe('passwd');
    expect(safeFileName('invoice\u202efdp.exe')).toBe('invoice_fdp.exe');
    expect(safeFileName('a"b<c>d|e?f*g:h.txt')).toBe('a_b_c_d_e_f_g_h.txt');
    expect(safeFileName('...')).toBe('attachment');
    expect(safeFileName('Übersicht März.pdf')).toBe('Übersicht März.pdf');
    // the bidi override cannot hide an executable: the name keeps its real last extension
    expect(refused([up('invoice\u202efdp.exe', PDF)])[0]!.code).toBe('file_type_blocked');
  });
});
